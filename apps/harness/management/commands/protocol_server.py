from pathlib import Path

from django.core.management.base import BaseCommand

from apps.harness.protocol_servers.standalone import PROTOCOLS, serve


class Command(BaseCommand):
    help = ("Run a local server speaking a provider's protocol (development only), with GET /stats and "
            "POST /reset on --control-port; credentials come from --credentials-dir (see standalone.py).")

    def add_arguments(self, parser):
        parser.add_argument("protocol", choices=PROTOCOLS)
        parser.add_argument("--port", type=int, required=True)
        parser.add_argument("--control-port", type=int, required=True)
        parser.add_argument("--credentials-dir", required=True)
        parser.add_argument("--latency-ms", type=float, default=0.0, help="hold each answer this long")
        parser.add_argument("--quota-per-s", type=float, default=None,
                            help="answer 429 above this rate (token bucket, 2 s of burst); default: FCM's "
                                 "10,000/s for fcm, unlimited for the others; 0: unlimited")

    def handle(self, *args, protocol, port, control_port, credentials_dir, latency_ms, quota_per_s, **options):
        self.stdout.write(f"{protocol} server on 127.0.0.1:{port}, stats on http://127.0.0.1:{control_port}/stats")
        serve(protocol, port, control_port, Path(credentials_dir), latency_ms, quota_per_s)
