"""The web surface: the REST API (/api/v1, OpenAPI), server-rendered pages, signing in with Slack
or an API token. It speaks to the same incident domain and outbox as the Slack surface.

    app.py        the APIFlask app, its error handling and session settings
    services.py   what routes need (settings, sessions, the outbox's wake-up), handed over once
    auth.py       who is asking: Sign in with Slack (OpenID Connect), the local sign-in, tokens
    schemas.py    the API's request and response shapes (validation and the OpenAPI document)
    api.py        /api/v1 routes
    pages.py      /incidents pages
"""
