"""A user's model factory for the export tests (imported as ``models_factory:build``)."""
from __future__ import annotations

import torch


class Small(torch.nn.Module):
    def __init__(self, channels: int = 1, classes: int = 2) -> None:
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.Conv2d(channels, 4, 3, padding=1), torch.nn.ReLU(),
                                        torch.nn.Conv2d(4, classes, 1))

    def forward(self, x):
        return self.body(x)


def build():
    return Small()


def build_rgb():
    return Small(channels=3, classes=3)
