import logging

from django.conf import settings
from django.core.management.base import BaseCommand
from portal.sandbox import SandboxServer, discover_sandboxes
from portal.sandbox.server import serve


class Command(BaseCommand):
    help = "Serve every fake upstream (sandbox) from one process."

    def add_arguments(self, parser):
        parser.add_argument("--bind", default=settings.SANDBOX_BIND, help="host:port (default SANDBOX_BIND)")

    def handle(self, *args, bind, **options):
        logging.getLogger("portal.sandbox").setLevel(logging.INFO)
        host, _, port = bind.rpartition(":")
        server = SandboxServer(discover_sandboxes())
        http_server = serve(host or "127.0.0.1", int(port), server)
        for name in sorted(server.sandboxes):
            self.stdout.write(f"sandbox {name}: {server.base_url}/{name}/  (control: {server.base_url}/_sandbox/{name}/state)")
        self.stdout.flush()
        try:
            http_server.serve_forever()
        except KeyboardInterrupt:
            pass
