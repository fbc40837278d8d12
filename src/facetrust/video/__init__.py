"""Stored video: frame sources, the face tracker, the detect/track pipeline and redaction."""

from __future__ import annotations

from facetrust.video.pipeline import PersonTrack, TrackedFace, VideoFaces, VideoOptions, detect_video
from facetrust.video.source import Frame, VideoInfo, VideoLimits, iter_frames, probe_video
from facetrust.video.tracker import Tracker, TrackerOptions

__all__ = [
    "Frame",
    "PersonTrack",
    "TrackedFace",
    "Tracker",
    "TrackerOptions",
    "VideoFaces",
    "VideoInfo",
    "VideoLimits",
    "VideoOptions",
    "detect_video",
    "iter_frames",
    "probe_video",
]
