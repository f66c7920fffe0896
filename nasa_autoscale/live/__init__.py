"""The live path: following a site's log folder as it grows (follower.py)."""
