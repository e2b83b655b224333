"""hip3: a trading framework and bot for Hyperliquid HIP-3 markets.

The state machines are imported as `hip3.machines` everywhere. The wheel ships them at
`hip3/machines/`; a checkout keeps them in the top-level `machines/` folder beside this
package, and the lines below let the same name find them there: when the packaged copy is
absent, the checkout's root joins this package's search path (hip3's own modules are still
found first, in this folder).
"""

from pathlib import Path as _Path

__version__ = "0.1.0"

_here = _Path(__file__).resolve().parent
if not (_here / "machines").is_dir() and (_here.parent / "machines" / "__init__.py").is_file():
    __path__.append(str(_here.parent))
