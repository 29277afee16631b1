"""A real OpenID provider for Hangar's sign-in tests: PyPI's oidc-provider-mock (installed into
.tools/venv by scripts/setup.sh), on 127.0.0.1 only, on a port the system picks.

It prints its issuer URL (`http://127.0.0.1:PORT`) as its first line, then serves until its
standard input closes (the test that started it ended, however it ended) or 30 minutes pass.
A test sets a person's claims with `PUT <issuer>/users/<sub>` (a JSON object: `email`,
`email_verified`, `groups`...; a claim such as `aud` or `exp` given there overrides the ID
token's own, which is how a test gets a token for another audience or an expired one), and signs
in as them by posting `sub=<sub>` to the authorization URL (or filling the form in a browser).

Usage: .tools/venv/bin/python scripts/oidc-provider.py [PORT]
(a PORT of a provider that stopped gives its issuer new keys: what a key rotation looks like)
"""

import os
import sys
import threading
import warnings

# Deprecation warnings of the provider's dependencies are not the tests' business.
warnings.simplefilter("ignore")

# The provider speaks plain HTTP on loopback: authlib refuses that unless told.
os.environ["AUTHLIB_INSECURE_TRANSPORT"] = "1"

import oidc_provider_mock  # noqa: E402
import werkzeug.serving  # noqa: E402

LIFETIME_SECS = 30 * 60


def main() -> None:
    app = oidc_provider_mock.app(require_nonce=True)
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    server = werkzeug.serving.make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.daemon = True
    thread.start()
    print(f"http://127.0.0.1:{server.server_port}", flush=True)
    # Until whoever started it closes our standard input (or dies, which closes it).
    done = threading.Event()

    def watch_stdin() -> None:
        sys.stdin.read()
        done.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    done.wait(LIFETIME_SECS)
    server.shutdown()


if __name__ == "__main__":
    main()
