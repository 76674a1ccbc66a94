#!/usr/bin/env python3
"""A user's flow through vigil's API, driven by a client that openapi-python-client generated
from `vigil openapi` (docs/design/015-api-contract.md).

    client_flow.py --client GENERATED_PACKAGE_DIR --plan PLAN.json

The plan names the server, one token per user and the photos and camera to use:

    {"base_url": "http://127.0.0.1:8080",
     "tokens": {"admin": "...", "investigator": "...", "reviewer1": "...", "reviewer2": "..."},
     "case": "CONTRACT-1",
     "photos_per_subject": 3,
     "enrol": {"George_W_Bush": ["a.jpg", ...], ...},
     "probe": {"person": "Tony_Blair", "photos": ["b.jpg", ...]},
     "watch": {"person": "Tony_Blair", "name": "Tony Blair", "photos": ["c.jpg", ...]},
     "camera": {"id": "scene", "url": "scene.mp4"},
     "alert_timeout_secs": 90}

Photos are candidates: the flow keeps those in which `POST /v1/detect` finds one usable face
(enrolment refuses a request holding any other). The investigator opens the case, enrols every
subject, identifies the first usable probe photo (its person must be the top candidate),
creates a watchlist and puts the watched person on it; the admin adds the file camera; two
reviewers confirm the alert the camera raises (the entry's creator and a second review by the
same reviewer are refused, with the one error shape). Every answer is parsed by the generated
models; any answer other than the one expected stops the flow with a message and exit status 1.
The last line printed is `contract flow: ok` on success.
"""

import argparse
import importlib
import json
import sys
import time
from http import HTTPStatus
from pathlib import Path


class FlowError(Exception):
    pass


def expect(response, status, what):
    """The parsed body of `response`, which must carry `status`."""
    if response.status_code != status:
        body = response.content.decode("utf-8", "replace")[:2000]
        raise FlowError(
            f"{what}: expected {int(status)}, got {int(response.status_code)}: {body}"
        )
    if response.parsed is None:
        raise FlowError(f"{what}: the generated client parsed no body from {response.content!r}")
    return response.parsed


def expect_error(client_package, response, status, code, what):
    """An error answer: `status`, and the one error shape with the stable `code`."""
    error = expect(response, status, what)
    if not isinstance(error, client_package.models.ErrorBody):
        raise FlowError(f"{what}: the body is not the error shape: {response.content!r}")
    if error.error.code != code:
        raise FlowError(f"{what}: expected error code {code!r}, got {error.error.code!r}")
    return error


def import_every_module(package_dir):
    """Imports every module of the generated package: a module that cannot be imported is an
    operation the client lacks.

    openapi-python-client 0.29 writes `body: File | ... | Unset = UNSET` without importing
    `Unset` for a required body offered in several media types (its issue #1451), which
    `POST /v1/detect` is (raw image bytes or a multipart form). That one failure is worked
    around, said aloud, and must stay the only one."""
    import builtins

    failures = []
    for path in sorted(package_dir.rglob("*.py")):
        relative = path.relative_to(package_dir.parent).with_suffix("")
        module = ".".join(part for part in relative.parts if part != "__init__")
        try:
            importlib.import_module(module)
        except NameError as error:
            if "'Unset'" not in str(error):
                failures.append(f"{module}: {error}")
                continue
            print(f"note: {module} lacks its import of Unset (openapi-python-client issue #1451); worked around")
            builtins.Unset = importlib.import_module(f"{package_dir.name}.types").Unset
            importlib.import_module(module)
        except Exception as error:  # noqa: BLE001 - any failure to import is reported
            failures.append(f"{module}: {type(error).__name__}: {error}")
    if failures:
        raise FlowError("generated modules that do not import:\n  " + "\n  ".join(failures))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--client", required=True, type=Path, help="the generated package's folder")
    parser.add_argument("--plan", required=True, type=Path)
    arguments = parser.parse_args()
    plan = json.loads(arguments.plan.read_text())

    package_dir = arguments.client.resolve()
    sys.path.insert(0, str(package_dir.parent))
    import_every_module(package_dir)
    vigil_client = importlib.import_module(package_dir.name)
    models = importlib.import_module(f"{package_dir.name}.models")
    vigil_client.models = models
    api = {
        name: importlib.import_module(f"{package_dir.name}.api.{group}.{name}")
        for group, name in [
            ("access", "me"),
            ("cases", "open_case"),
            ("subjects", "create_subject"),
            ("faces", "detect"),
            ("faces", "identify"),
            ("watchlists", "create_watchlist"),
            ("watchlists", "add_entry"),
            ("video", "add_camera"),
            ("video", "show_camera"),
            ("watchlists", "list_alerts"),
            ("watchlists", "review_alert"),
            ("watchlists", "show_alert"),
        ]
    }
    import httpx  # the generated client's own dependency

    File = importlib.import_module(f"{package_dir.name}.types").File

    def client(user):
        return vigil_client.AuthenticatedClient(
            base_url=plan["base_url"],
            token=plan["tokens"][user],
            # enrolment and identification run the models on the server (a debug build in tests)
            timeout=httpx.Timeout(120.0),
        )

    def photo(path):
        return File(payload=open(path, "rb"), file_name=Path(path).name, mime_type="image/jpeg")

    admin, investigator = client("admin"), client("investigator")

    def usable(paths, count, what):
        """The first `count` of `paths` holding exactly one usable face."""
        kept = []
        for path in paths:
            report = expect(
                api["detect"].sync_detailed(client=investigator, body=models.ImageForm(image=photo(path))),
                HTTPStatus.OK,
                f"POST /v1/detect ({Path(path).name})",
            )
            if len(report.faces) == 1 and report.faces[0].quality.usable:
                kept.append(path)
            if len(kept) == count:
                return kept
        raise FlowError(f"{what}: only {len(kept)} of {len(paths)} photos hold one usable face, {count} wanted")

    reviewers = [("reviewer1", client("reviewer1")), ("reviewer2", client("reviewer2"))]
    case = plan["case"]
    reason = "contract test"

    for user in ["admin", "investigator", "reviewer1", "reviewer2"]:
        me = expect(api["me"].sync_detailed(client=client(user)), HTTPStatus.OK, f"GET /v1/me as {user}")
        if me.name != user:
            raise FlowError(f"GET /v1/me with {user}'s token names {me.name!r}")

    expires_at_ms = int(time.time() * 1000) + 86_400_000
    opened = expect(
        api["open_case"].sync_detailed(
            client=investigator,
            body=models.NewCaseBody(
                reference=case,
                purpose="exercise the API contract with a generated client",
                legal_basis="contract test",
                expires_at_ms=expires_at_ms,
            ),
        ),
        HTTPStatus.CREATED,
        "POST /v1/cases",
    )
    print(f"opened case {opened.reference}")

    subjects = {}
    per_subject = plan.get("photos_per_subject", 3)
    for person, candidates in plan["enrol"].items():
        photos = usable(candidates, per_subject, f"enrolment of {person}")
        report = expect(
            api["create_subject"].sync_detailed(
                client=investigator,
                body=models.EnrolmentForm(name=person, image=[photo(p) for p in photos]),
            ),
            HTTPStatus.CREATED,
            f"POST /v1/subjects ({person})",
        )
        if not report.created or report.subject.name != person or len(report.enrolled) != len(photos):
            raise FlowError(f"enrolment of {person}: {report.to_dict()}")
        subjects[person] = report.subject.id
        print(f"enrolled {person} as subject {report.subject.id} from {len(report.enrolled)} photos")

    probe = plan["probe"]
    identified = expect(
        api["identify"].sync_detailed(
            client=investigator,
            body=models.ImageForm(image=photo(usable(probe["photos"], 1, "the probe")[0])),
            x_vigil_case=case,
            x_vigil_reason=reason,
        ),
        HTTPStatus.OK,
        "POST /v1/identify",
    )
    if len(identified.faces) != 1 or not identified.faces[0].candidates:
        raise FlowError(f"identify: expected one face with candidates: {identified.to_dict()}")
    top = identified.faces[0].candidates[0]
    if top.subject_name != probe["person"] or top.subject_id != subjects[probe["person"]]:
        raise FlowError(f"identify: top candidate {top.subject_name!r}, expected {probe['person']!r}")
    print(
        f"identified {probe['person']} as the top candidate "
        f"(score {top.score:.3f}, false-match rate {top.false_match_rate:.2e})"
    )

    watchlist = expect(
        api["create_watchlist"].sync_detailed(
            client=investigator,
            body=models.NewWatchlistBody(name="contract", false_match_rate=1e-5),
        ),
        HTTPStatus.CREATED,
        "POST /v1/watchlists",
    )
    watch = plan["watch"]
    entry = expect(
        api["add_entry"].sync_detailed(
            watchlist.id,
            client=investigator,
            body=models.WatchEntryForm(
                name=watch["name"],
                image=[photo(p) for p in usable(watch["photos"], per_subject, "the watchlist entry")],
                legal_basis="contract test",
                responsible="investigator",
                expires_at_ms=expires_at_ms - 60_000,
            ),
            x_vigil_case=case,
            x_vigil_reason=reason,
        ),
        HTTPStatus.CREATED,
        f"POST /v1/watchlists/{watchlist.id}/entries",
    )
    print(f"watchlist {watchlist.id} holds entry {entry.id} ({watch['name']})")

    camera = plan["camera"]
    added = expect(
        api["add_camera"].sync_detailed(
            client=admin,
            body=models.CameraConfig(
                id=camera["id"],
                url=camera["url"],
                loop_file=True,
                analysis_fps=6.0,
                analysis_width=640,
            ),
        ),
        HTTPStatus.CREATED,
        "POST /v1/cameras",
    )
    print(f"added camera {added.config.id}")

    deadline = time.monotonic() + plan.get("alert_timeout_secs", 90)
    first_reviewer = reviewers[0][1]
    alert = None
    while alert is None:
        alerts = expect(
            api["list_alerts"].sync_detailed(client=first_reviewer),
            HTTPStatus.OK,
            "GET /v1/alerts",
        )
        alert = next((a for a in alerts if a.alert.watchlist_entry == entry.id), None)
        if alert is None:
            if time.monotonic() > deadline:
                status = api["show_camera"].sync_detailed(camera["id"], client=admin)
                raise FlowError(
                    f"no alert for entry {entry.id} within {plan.get('alert_timeout_secs', 90)} s; "
                    f"camera: {status.content.decode('utf-8', 'replace')}"
                )
            time.sleep(0.5)
    record = alert.alert
    if record.state != models.AlertState.CANDIDATE or record.false_match_rate > 1e-5:
        raise FlowError(f"the new alert: {alert.to_dict()}")
    print(f"alert {record.id} raised for {record.subject_name} (false-match rate {record.false_match_rate:.2e})")

    confirm = models.ReviewBody(decision="confirm")
    # The entry's creator may not review: the one error shape, with its stable code.
    expect_error(
        vigil_client,
        api["review_alert"].sync_detailed(record.id, client=investigator, body=confirm),
        HTTPStatus.FORBIDDEN,
        "forbidden",
        "POST /v1/alerts/{id}/review by the entry's creator",
    )
    first = expect(
        api["review_alert"].sync_detailed(record.id, client=first_reviewer, body=confirm),
        HTTPStatus.OK,
        "POST /v1/alerts/{id}/review by reviewer1",
    )
    if first.alert.state != models.AlertState.CANDIDATE:
        raise FlowError(f"one confirmation must not settle the alert: {first.to_dict()}")
    expect_error(
        vigil_client,
        api["review_alert"].sync_detailed(record.id, client=first_reviewer, body=confirm),
        HTTPStatus.CONFLICT,
        "conflict",
        "POST /v1/alerts/{id}/review by reviewer1 again",
    )
    second = expect(
        api["review_alert"].sync_detailed(record.id, client=reviewers[1][1], body=confirm),
        HTTPStatus.OK,
        "POST /v1/alerts/{id}/review by reviewer2",
    )
    shown = expect(
        api["show_alert"].sync_detailed(record.id, client=first_reviewer),
        HTTPStatus.OK,
        "GET /v1/alerts/{id}",
    )
    reviewers_seen = sorted(review.reviewer for review in shown.alert.reviews)
    if second.alert.state != models.AlertState.CONFIRMED or shown.alert.state != models.AlertState.CONFIRMED:
        raise FlowError(f"two confirmations must confirm the alert: {shown.to_dict()}")
    if reviewers_seen != ["reviewer1", "reviewer2"]:
        raise FlowError(f"the alert's reviews name {reviewers_seen}")
    print(f"alert {record.id} confirmed by {' and '.join(reviewers_seen)}")
    print("contract flow: ok")


if __name__ == "__main__":
    try:
        main()
    except FlowError as error:
        print(f"contract flow failed: {error}", file=sys.stderr)
        sys.exit(1)
