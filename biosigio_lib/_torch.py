"""torch adapters of :class:`biosigio_lib.windows.WindowDataset` (imported only on request)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from .errors import MissingDependencyError

__all__ = ["torch_dataset"]


def torch_dataset(ds: Any, iterable: bool = True,
                  transform: Callable[[Any], Any] | None = None) -> Any:
    """Wrap a WindowDataset as a torch IterableDataset (or map-style Dataset)."""
    try:
        import torch
        from torch.utils.data import Dataset, IterableDataset
    except ImportError as exc:
        raise MissingDependencyError(
            "WindowDataset.as_torch needs PyTorch; install torch (pip install torch) or use "
            "the dataset's numpy windows directly") from exc

    def item(w: Any) -> Any:
        return transform(w) if transform is not None else torch.from_numpy(w.data)

    if iterable:
        class TorchWindowIterable(IterableDataset):  # type: ignore[misc, type-arg, unused-ignore]
            """Windows of a WindowDataset; each DataLoader worker yields its share."""

            def __init__(self) -> None:
                self.windows = ds

            def __iter__(self) -> Iterator[Any]:
                return (item(w) for w in self.windows)

            def __len__(self) -> int:
                return len(self.windows)

        return TorchWindowIterable()

    class TorchWindowDataset(Dataset):  # type: ignore[misc, type-arg, unused-ignore]
        """Map-style: ``ds[i]`` is window ``i`` (a sampler picks the order)."""

        def __init__(self) -> None:
            self.windows = ds

        def __getitem__(self, i: int) -> Any:
            return item(self.windows[i])

        def __len__(self) -> int:
            return len(self.windows)

    return TorchWindowDataset()
