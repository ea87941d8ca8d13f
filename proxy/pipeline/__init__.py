"""Source bytes + ProcessingOptions -> encoded image, with libvips.

Everything here is CPU work and blocking: the app runs it on a thread pool,
never on the event loop.
"""
