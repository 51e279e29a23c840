"""The batch format's transforms, registered by the telemetry module for its streams.

The telemetry module owns the batch format, so it is the one that tells the runtime how to
shrink a batch (the spool's degrade ladder: halve every column, same message id) and how to
correct an untrusted batch's times once the clock is trusted (the cloud link's re-stamp).
The spool and the cloud link only see opaque records of streams ``telemetry/{name}``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

from edge_agent.modules.telemetry.batch import downsample_encoded, restamp_encoded
from edge_agent.modules.telemetry.batch.catalogue import Catalogue
from edge_agent.streams import StreamTransforms

# Every stream this module writes to the spool (``telemetry/{stream name}``).
STREAM_FILTER = "telemetry/#"


def batch_transforms(
    boot_id: str, catalogues: Mapping[bytes, Catalogue] | None = None
) -> StreamTransforms:
    """Degrade and re-stamp for batches cut in boot ``boot_id`` (other boots are left alone).

    ``catalogues`` is the module's live hash lookup, so v3 batches are transformed (and stay
    v3) as long as their catalogue is kept; without it they are left as they are.
    """
    return StreamTransforms(
        degrade=functools.partial(downsample_encoded, catalogues=catalogues),
        restamp=functools.partial(restamp_encoded, boot_id=boot_id, catalogues=catalogues),
    )
