"""edgefit: fit a trained model to a device's latency, memory and power envelope.

``import edgefit`` is deliberately light: torch, numba and onnxruntime load only inside the code
that needs them. The public API is reached through the subpackages::

    from edgefit.targets import load_target, list_targets
    from edgefit.graph import load_graph
    from edgefit.examples import get_example, list_examples
"""

from edgefit._version import __version__

__all__ = ["__version__"]
