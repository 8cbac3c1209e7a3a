"""The web surface: the REST API (/api/v1, OpenAPI), server-rendered pages, signing in with Slack
or an API token. It speaks to the same incident domain and outbox as the Slack surface.

    app.py        the APIFlask app, its error handling and session settings
    errors.py     the domain's refusals as HTTP statuses
    services.py   what routes need (settings, sessions, the outbox's wake-up), handed over once
    auth.py       who is asking: Sign in with Slack (OpenID Connect), the local sign-in, tokens
    schemas.py    the API's request and response shapes (validation and the OpenAPI document)
    api.py        /api/v1: api_common (blueprint, rendering), api_incidents (incidents, intake),
                  api_timeline (notes, timeline), api_screenshots, api_stats
    pages.py      /incidents pages: pages_view (rendering), pages_forms (the actions' forms)
    reports.py    post-mortem downloads, the stats page and its charts (bot/reports draws them)
"""
