"""The API under gunicorn's aiohttp worker, for comparing it with `marketplace serve`'s own
process supervisor and connection dealer (marketplace/processes.py) in bench.load and
bench.preview_load (`--server gunicorn`):

    gunicorn bench.gunicorn_app:app --worker-class aiohttp.GunicornUVLoopWebWorker --workers K

Each worker builds the whole API (its pools, its live index mapped from the shared snapshot)
from the same environment as `marketplace serve`.
"""

from __future__ import annotations

from aiohttp import web


async def app() -> web.Application:
    from api.app import create_app
    from config.logs import setup_logging
    from config.settings import Settings

    setup_logging()
    return create_app(Settings.from_env(), pages=True)
