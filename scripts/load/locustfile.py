"""Load on a running `vigil serve` (issue 13, "Load"): identify and retrospective search with
real LFW photos, and a flood of wrong-password logins beside them.

Configured by scripts/load/run.sh through the environment:
  VIGIL_LOAD_TOKEN   an investigator's API token (identify, search)
  VIGIL_LOAD_CASE    an open case the investigator belongs to (search needs one)
  VIGIL_LOAD_PHOTOS  a file listing probe photo paths, one per line
  VIGIL_LOAD_LOGIN   the name of a real user the flood guesses passwords for

Answers 429 and 503 are refusals by a deliberate limit (throttling, concurrency limits), not
errors: they are reported under their own name ("REFUSED <route>"), counted as successes so
that they do not read as failures, and kept out of the route's own latency figures. Every
other non-2xx answer (and every login answer other than 401/429) is a failure.
"""

import itertools
import os
import random
import threading

from locust import HttpUser, constant, task
from requests.adapters import HTTPAdapter

TOKEN = os.environ.get("VIGIL_LOAD_TOKEN", "")
CASE = os.environ.get("VIGIL_LOAD_CASE", "")
LOGIN_NAME = os.environ.get("VIGIL_LOAD_LOGIN", "")
REFUSALS = (429, 503)


def _photos():
    path = os.environ.get("VIGIL_LOAD_PHOTOS")
    if not path:
        return []
    with open(path, encoding="utf-8") as listing:
        names = [line.strip() for line in listing if line.strip()]
    photos = []
    for name in names:
        with open(name, "rb") as photo:
            photos.append((os.path.basename(name), photo.read()))
    return photos


PHOTOS = _photos()
_next_photo = itertools.cycle(range(max(len(PHOTOS), 1)))
_lock = threading.Lock()


def next_photo():
    with _lock:
        return PHOTOS[next(_next_photo)]


def post_image(user, path, name, headers):
    file_name, data = next_photo()
    with user.client.post(
        path,
        files={"image": (file_name, data, "image/jpeg")},
        headers=headers,
        name=name,
        catch_response=True,
    ) as response:
        if response.status_code in REFUSALS:
            response.request_meta["name"] = f"REFUSED {name}"
            response.success()
        elif 200 <= response.status_code < 300:
            response.success()
        else:
            response.failure(f"HTTP {response.status_code}: {response.text[:200]}")


class Investigator(HttpUser):
    """Identifies and searches back-to-back (no think time): the worst case for the server."""

    wait_time = constant(0)
    fixed_count = int(os.environ.get("VIGIL_LOAD_INVESTIGATORS", "32"))

    def on_start(self):
        self.headers = {
            "Authorization": f"Bearer {TOKEN}",
            "X-Vigil-Case": CASE,
            "X-Vigil-Reason": "load test",
        }

    @task(int(os.environ.get("VIGIL_LOAD_IDENTIFY_WEIGHT", "3")))
    def identify(self):
        post_image(self, "/v1/identify", "/v1/identify", self.headers)

    @task(int(os.environ.get("VIGIL_LOAD_SEARCH_WEIGHT", "1")))
    def search(self):
        post_image(self, "/v1/search", "/v1/search", self.headers)


class SourceAddressAdapter(HTTPAdapter):
    """Connects from a given local address: each flooding client is its own 127.0.0.x, as
    separate machines would be, so the per-client throttle sees several clients."""

    def __init__(self, address, **kwargs):
        self.address = address
        super().__init__(**kwargs)

    def init_poolmanager(self, *args, **kwargs):
        kwargs["source_address"] = (self.address, 0)
        super().init_poolmanager(*args, **kwargs)


_flooders = itertools.count()


class LoginFlood(HttpUser):
    """Wrong passwords, as fast as the server answers, from several client addresses, for a
    real user and for names that do not exist (both cost the server a password hash)."""

    wait_time = constant(0)
    fixed_count = int(os.environ.get("VIGIL_LOAD_FLOODERS", "8"))

    def on_start(self):
        with _lock:
            number = next(_flooders)
        adapter = SourceAddressAdapter(f"127.0.0.{10 + number % 200}")
        self.client.mount("http://", adapter)

    @task
    def wrong_password(self):
        password = f"not-the-password-{random.randrange(1 << 30)}"
        name = random.choice([LOGIN_NAME, f"no-such-user-{random.randrange(1000)}"])
        with self.client.post(
            "/v1/login",
            json={"name": name, "password": password},
            name="/v1/login (wrong password)",
            catch_response=True,
        ) as response:
            if response.status_code == 401:
                response.success()
            elif response.status_code in REFUSALS:
                response.request_meta["name"] = "REFUSED /v1/login (wrong password)"
                response.success()
            else:
                response.failure(f"HTTP {response.status_code}: {response.text[:200]}")
