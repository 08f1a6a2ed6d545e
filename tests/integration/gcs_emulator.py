"""Runs gcp-storage-emulator (in memory) on 127.0.0.1:PORT with one bucket, plus objects.move.

Runs inside .cache/gcs-emulator-venv, not collected by pytest.

    python gcs_emulator.py PORT BUCKET

Real GCS serves `POST b/{bucket}/o/{object}/moveTo/o/{dest}` (objects.move, an atomic rename)
and gcsfs's mv() tries it first; the emulator answers 501, which gcsfs retries six times with
exponential backoff (about 30 s per file) before falling back to copy + delete. The route added
here does what GCS does, so a run against the emulator takes seconds, not minutes.
"""

import re
import sys
from http import HTTPStatus

from gcp_storage_emulator import server, settings
from gcp_storage_emulator.__main__ import main
from gcp_storage_emulator.exceptions import NotFound
from gcp_storage_emulator.handlers import objects


def move(request, response, storage, *args, **kwargs):
    p = request.params
    try:
        resource = objects._copy(request.base_url, storage, p["bucket_name"], p["object_id"],
                                 p["bucket_name"], p["dest_object_id"])
        storage.delete_file(p["bucket_name"], p["object_id"])
    except NotFound:
        response.status = HTTPStatus.NOT_FOUND
        return
    response.json(resource)


MOVE_ROUTE = (
    rf"^{re.escape(settings.API_ENDPOINT)}/b/(?P<bucket_name>[-.\w]+)/o/(?P<object_id>.*[^/]+)"
    rf"/moveTo/o/(?P<dest_object_id>.*[^/]+)$",
    {server.POST: move},
)

if __name__ == "__main__":
    port, bucket = sys.argv[1], sys.argv[2]
    server.HANDLERS = (MOVE_ROUTE, *server.HANDLERS)  # before the generic object route
    main(["start", "--host", "127.0.0.1", "--port", port, "--in-memory", "--quiet",
          "--default-bucket", bucket])
