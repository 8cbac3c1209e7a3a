"""Thin Slack listeners by surface: parse the payload, call one domain function, render."""

from slack_bolt import App

from bot.app import Services
from bot.listeners import actions, commands, events, options, shortcuts, views


def register(app: App, services: Services) -> None:
    for surface in (commands, views, actions, shortcuts, events, options):
        surface.register(app, services)
