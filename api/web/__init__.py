"""Server-rendered pages for buyers, sellers and admins (aiohttp-jinja2, no front-end build).

`setup_web(app)` adds the page routes, the templates (api/templates) and the static files
(api/static) to the API application. Pages read what the API's cleanup contexts put on the app
(api.keys: POOL, LIVE, QUEUE, SETTINGS) and use the API's repositories and permission rules.
"""

from __future__ import annotations

from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from api.web import admin, buyer, performance, seller, signin
from api.web.filters import FILTERS

_ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = _ROOT / "templates"
STATIC = _ROOT / "static"


def setup_web(app: web.Application) -> None:
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=jinja2.select_autoescape(["html"], default=True),
        undefined=jinja2.ChainableUndefined,
    )
    env.filters.update(FILTERS)
    env.trim_blocks = True
    env.lstrip_blocks = True

    r = app.router
    r.add_get("/", signin.home, name="web.home")
    r.add_get("/signin", signin.signin_form, name="web.signin")
    r.add_post("/signin", signin.signin)
    r.add_post("/signout", signin.signout, name="web.signout")

    r.add_get("/buyer/briefs", buyer.list_briefs, name="web.buyer.briefs")
    r.add_post("/buyer/briefs", buyer.create_brief)
    r.add_get("/buyer/briefs/new", buyer.new_brief, name="web.buyer.new")
    r.add_post("/buyer/briefs/preview", buyer.preview, name="web.buyer.preview")
    r.add_get(r"/buyer/briefs/{brief_id:\d+}", buyer.show_brief, name="web.buyer.brief")
    r.add_post(r"/buyer/briefs/{brief_id:\d+}", buyer.save_or_publish)
    r.add_get(r"/buyer/briefs/{brief_id:\d+}/shortlist", buyer.shortlist_fragment)
    r.add_post(r"/buyer/briefs/{brief_id:\d+}/invitations", buyer.invite)

    r.add_get("/seller", seller.opportunities, name="web.seller")
    r.add_get(r"/seller/opportunities/{brief_id:\d+}", seller.opportunity,
              name="web.seller.opportunity")
    r.add_post(r"/seller/opportunities/{brief_id:\d+}/response", seller.respond)
    r.add_get("/seller/settings", seller.settings_form, name="web.seller.settings")
    r.add_post("/seller/settings", seller.save_settings)
    r.add_get("/seller/deliveries", seller.deliveries, name="web.seller.deliveries")
    r.add_get("/unsubscribe/{token}", seller.unsubscribe_confirm, name="web.unsubscribe")
    r.add_post("/unsubscribe/{token}", seller.unsubscribe)
    r.add_get("/respond/{token}", seller.response_confirm, name="web.respond")
    r.add_post("/respond/{token}", seller.response_link)

    r.add_get("/admin", admin.rules_page)
    r.add_get("/admin/rules", admin.rules_page, name="web.admin.rules")
    r.add_post("/admin/rules/preview", admin.preview_rules)
    r.add_post("/admin/rules/activate", admin.activate_rules)
    r.add_post(r"/admin/rules/{version:\d+}/activate", admin.reactivate)
    r.add_get("/admin/deliveries", admin.failed_deliveries, name="web.admin.deliveries")
    r.add_post(r"/admin/deliveries/{alert_id:\d+}/redrive", admin.redrive)
    r.add_get("/admin/audit", admin.audit_log, name="web.admin.audit")

    r.add_get("/performance", performance.performance_page, name="web.performance")

    r.add_static("/static/", STATIC, name="static", append_version=True)
