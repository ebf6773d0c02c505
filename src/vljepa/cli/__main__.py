"""`python -m vljepa.cli ...`: the `vljepa` command, expected errors as one `error:` line with exit code 2."""

from .main import app

if __name__ == "__main__":
    app()
