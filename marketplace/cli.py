"""The `marketplace` command. Each sub-command lives in its own module; this file only wires
arguments to them so that `--help` tells everything without reading the source."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

_EPILOG = """\
settings (environment, prefix MARKETPLACE_):
  DATABASE_URL   PostgreSQL URL; unset: an embedded PostgreSQL under DATA_DIR
  REDIS_URL      Redis URL for the job queue; unset: an embedded Valkey under DATA_DIR
  ADMIN_TOKEN    bootstrap admin bearer token (printed by `up` when generated)
  SMTP_URL       smtp://user:password@host:port for e-mail alerts; unset: e-mails are logged
  DATA_DIR       where embedded servers keep their data (default ./.marketplace)
  HOST, PORT     where the API listens (default 127.0.0.1:8080)
  WEBHOOK_ALLOW_PRIVATE  deliver webhooks to loopback/private addresses (tests, demos only)
  PUBLIC_URL     base URL used in e-mail links (default http://HOST:PORT)
  SECRET_KEY     signs the links in alerts (unsubscribe, answers; valid for 60 days);
                 the same on every API and worker machine
  API_PROCESSES  API processes behind the port (connections dealt in turn; they map
                 one index snapshot, shared in memory):
                 a number or 'auto' (one per core); default 1
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="marketplace",
        description="Buyer-seller matching engine for government digital marketplaces.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    up = sub.add_parser(
        "up",
        help="everything in one process: servers, migrations, demo data, API and a worker",
        description="Start the embedded PostgreSQL and Valkey (unless URLs are set), apply "
        "migrations, load the demo data on first start, then run the API and a worker "
        "together. Prints the URL and an admin token. Ctrl-C stops everything cleanly.",
    )
    processes_help = ("API processes behind the port (the parent deals connections in turn),"
                      " each with its own index (memory: ~160 MB per 100,000 sellers each);"
                      " a number or 'auto'"
                      " (one per core); default MARKETPLACE_API_PROCESSES or 1")
    up.add_argument("--processes", metavar="K", help=processes_help)
    p = sub.add_parser("serve", help="run the HTTP API only")
    p.add_argument("--no-migrate", action="store_true", help="do not apply migrations first")
    p.add_argument("--processes", metavar="K", help=processes_help)
    sub.add_parser("worker", help="run a background worker (matching, alerts, digests, relay)")
    sub.add_parser("migrate", help="apply pending database migrations and exit")

    p = sub.add_parser(
        "import-dm",
        help="import a Digital Marketplace opportunity-data CSV",
        description="Import briefs (and, for awarded ones, the winning seller and the work as "
        "a case study) from a Digital Marketplace opportunity-data.csv. Re-importing the same "
        "file changes nothing; bad rows are reported with their line number and skipped.",
    )
    p.add_argument(
        "file", help="path to the CSV (e.g. ../shared/data/dos-opportunities-2016-2017.csv)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    p = sub.add_parser(
        "import-ocds",
        help="import Open Contracting Data Standard awards (OCDS 1.1)",
        description="Import the awards of an OCDS release package, record package (each "
        "record's compiledRelease, else its releases) or JSON lines of releases. Each won "
        "award becomes an awarded brief (tender title and description, buyer, CPV category, "
        "award date, value when in GBP or of no stated currency) and past work of each "
        "supplier. A supplier is the seller keyed by its OCDS party id; a new party id takes "
        "over a seller of the same normalised name that has none yet (e.g. from import-dm). "
        "A supplier is an SME when its party's details.scale says 'sme' or 'micro'. CPV codes "
        "met are added to the category list (existing labels are kept). Re-importing the same "
        "file "
        "changes nothing; bad releases are reported with their place in the file and skipped. "
        "Writes to MARKETPLACE_DATABASE_URL, else to the embedded PostgreSQL under "
        "MARKETPLACE_DATA_DIR (migrated first).",
    )
    p.add_argument("file", help="path to the OCDS file (.json or JSON lines)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    p = sub.add_parser(
        "eval",
        help="ranking quality on past outcomes, ours beside BM25 and PostgreSQL full-text",
        description="Build seller profiles from wins published before --split-date, rank every "
        "seller for each later awarded brief whose winner had an earlier win, and report "
        "recall@1, recall@10, MRR and NDCG@10 for our rules, BM25 and PostgreSQL ts_rank / "
        "ts_rank_cd; for our rules also recall@5%/10%/20% (the winner within that share of "
        "the candidates), alert_volume and alert_recall at the alert threshold, the share of "
        "winners matched at all, and the alert curve (volume and recall per threshold). The "
        "outcomes come from exactly one source: a Digital Marketplace "
        "opportunity CSV, or OCDS awards (a supplier is its party id; profiles from awards "
        "dated before the split; queries are the later awards with exactly one supplier who "
        "has an earlier award). Bad rows or releases are reported on stderr and skipped. "
        "Needs no running service (PostgreSQL FTS uses the embedded default or "
        "MARKETPLACE_DATABASE_URL).",
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--opportunities", metavar="CSV",
                        help="Digital Marketplace opportunity-data CSV")
    source.add_argument("--ocds", metavar="FILE",
                        help="OCDS 1.1 release package, record package or JSON lines of releases")
    source.add_argument(
        "--from-db", action="store_true",
        help="the service's own awards (recorded or imported), read from MARKETPLACE_DATABASE_URL"
        " or the embedded default",
    )
    p.add_argument(
        "--split-date", required=True,
        help="YYYY-MM-DD: profiles before, queries on/after (the publication date of an "
        "opportunity, the award date of an OCDS award)",
    )
    p.add_argument("--rules", help="rules JSON file to evaluate instead of the defaults")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument(
        "--fit",
        action="store_true",
        help="fit rule weights on outcomes before --split-date and propose a rule set",
    )
    p.add_argument("--out", help="with --fit: write the proposed rules JSON here")
    p.add_argument("--no-peers", action="store_true", help="skip BM25 and PostgreSQL peers")
    p.add_argument("--quiet", action="store_true", help="no progress bars")

    p = sub.add_parser("token", help="manage API tokens")
    tsub = p.add_subparsers(dest="token_command", metavar="ACTION", required=True)
    p = tsub.add_parser("create", help="create an account and print its bearer token (shown once)")
    p.add_argument("--role", required=True, choices=["admin", "buyer", "seller"])
    p.add_argument("--name", required=True, help="account name, e.g. a person or team")
    p.add_argument("--organisation", default="", help="buyer organisation")
    p.add_argument("--seller-id", type=int, help="for role seller: the seller profile it manages")
    p.add_argument("--expires-days", type=int, help="token lifetime in days (default: no expiry)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from config.logs import setup_logging

    setup_logging(verbose=args.verbose)
    if args.command == "eval":
        from marketplace.evaluation import run_eval

        return run_eval(args)
    if args.command == "import-dm":
        from marketplace.importer import run_import

        return run_import(args)
    if args.command == "import-ocds":
        from marketplace.ocds_import import run_import_ocds

        return run_import_ocds(args)
    from marketplace import runner

    commands = {
        "up": runner.run_up,
        "serve": runner.run_serve,
        "worker": runner.run_worker,
        "migrate": runner.run_migrate,
        "token": runner.run_token,
    }
    return commands[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
