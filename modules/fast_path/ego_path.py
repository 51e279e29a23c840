"""Is an object in the ego's path? The path predicted from speed and yaw rate, and overlap.

The ego is assumed to keep its present curvature (yaw rate over speed): its path is a circle
through the front bumper, tangent to the vehicle's axis. An object the radar reports at a
distance ahead and a lateral offset (both in the vehicle's frame, left +) is compared with the
path at that distance: its extent (offset ± half its width) against the ego's corridor (half
the ego's width plus a margin). Pure functions, no state: the policy calls them per object.
"""

from __future__ import annotations

import math

MIN_PATH_SPEED_MPS = 0.5
"""Below this the yaw rate over the speed means nothing: the path is taken as straight."""


def path_curvature(speed_mps: float, yaw_rate_dps: float, max_curvature_per_m: float) -> float:
    """The curvature (1/m, left +) of the path the ego drives if it keeps its yaw rate."""
    if not (math.isfinite(speed_mps) and math.isfinite(yaw_rate_dps)):
        return 0.0
    if speed_mps < MIN_PATH_SPEED_MPS:
        return 0.0
    curvature = math.radians(yaw_rate_dps) / speed_mps
    return min(max(curvature, -max_curvature_per_m), max_curvature_per_m)


def path_offset(distance_m: float, curvature_per_m: float) -> float:
    """Lateral position (left +) of the predicted path ``distance_m`` ahead of the bumper.

    Exact for a circle: ``k x² / (1 + sqrt(1 - k² x²))``; beyond a quarter turn the circle has
    no point that far ahead, and the path's widest offset (its radius) is returned.
    """
    reach = curvature_per_m * distance_m
    if abs(reach) >= 1.0:
        return math.copysign(1.0 / abs(curvature_per_m), curvature_per_m)
    return curvature_per_m * distance_m**2 / (1.0 + math.sqrt(1.0 - reach * reach))


def lateral_clearance(
    lateral_m: float, width_m: float, distance_m: float, curvature_per_m: float, ego_width_m: float
) -> float:
    """Free space (m) between the object's near side and the ego's side as it gets there.

    Negative: the object overlaps the predicted path by that much (a full-width target
    straight ahead gives minus the narrower width).
    """
    offset = lateral_m - path_offset(max(distance_m, 0.0), curvature_per_m)
    return abs(offset) - width_m / 2 - ego_width_m / 2


def overlap_fraction(clearance_m: float, ego_width_m: float) -> float:
    """The share of the ego's width that overlaps the object (0 to 1), as Euro NCAP counts."""
    return min(max(-clearance_m / ego_width_m, 0.0), 1.0)
