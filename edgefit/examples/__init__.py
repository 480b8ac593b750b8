"""Built-in example models: one trained on real data (``digits-cnn``) and architecture-only
references for each track (ResNet-18, MobileNetV2, DS-CNN keyword spotting, a tiny transformer,
speech enhancement).

Every example supports the architecture knobs an optimizer searches — ``width``, ``depth``,
``resolution``, ``activation`` — and builds a ``torch.nn.Module`` in eval mode. Importing this
package does not import torch; building a model does.

>>> from edgefit.examples import get_example, list_examples
>>> [spec.name for spec in list_examples("*net*")]
['mobilenetv1-vww', 'mobilenetv2', 'resnet18', 'resnet8-cifar']
>>> spec = get_example("resnet18")
>>> model = spec.build(width=0.5, depth=0.5, resolution=160, activation="hardswish")
>>> model(spec.example_input(resolution=160)).shape
torch.Size([1, 1000])
"""

from edgefit.examples import _catalog  # noqa: F401  (registers the built-in examples)
from edgefit.examples._data import load_digits_splits
from edgefit.examples._registry import (
    ACTIVATIONS,
    ExampleSpec,
    Knobs,
    get_example,
    list_examples,
    register_example,
)
from edgefit.examples._train import TrainRecipe, TrainReport, evaluate_accuracy, train_digits_cnn

__all__ = [
    "ACTIVATIONS",
    "ExampleSpec",
    "Knobs",
    "TrainRecipe",
    "TrainReport",
    "evaluate_accuracy",
    "get_example",
    "list_examples",
    "load_digits_splits",
    "register_example",
    "train_digits_cnn",
]
