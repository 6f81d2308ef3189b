"""Bounds on the media we take, shared by the upload's probe and the pure
planner (which must not import a media library)."""

# Smaller pictures are icons or mistakes (a 1x1 tracking pixel, a corrupt header), not video:
# refused with a reason rather than upscaled into a rendition nobody can use.
MIN_PICTURE_SIDE = 16
