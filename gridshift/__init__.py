"""gridshift: keeps an AI data center inside its power budget."""

__version__ = "0.1.0"
