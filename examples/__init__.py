"""Runnable examples: the tutorial's scenarios, served through each response layer.

``examples.scenario1`` holds scenario 1's producers (written once) and builds
its routes on either layer; ``examples.app`` is the demo that mounts them side
by side. ``python -m examples`` serves the demo; ``python -m examples.client URL``
reads a stream the way the tutorial's httpx client does; ``python -m
examples.measure`` measures the figures the README quotes.
"""
