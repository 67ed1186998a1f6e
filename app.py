"""The only entry point: ``app`` for ``ctip serve``, ``server`` for ``gunicorn app:server``."""

from dashboard.app import create_app, warm_releases

app = create_app()
server = app.server
warm_releases(app)
