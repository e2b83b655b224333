"""The exact Hyperliquid wire layer: numbers, ids, actions, signing and frames.

Everything that must match the exchange byte for byte lives here, once. Import from the
submodules (`hip3.protocol.numbers`, `.ids`, `.actions`, `.signing`, `.frames`); this
package file stays empty of logic so importing one part does not load the others.
"""
