"""Sources: a site and its versions. Version rules and order (versions.py), which stored versions a search or a
command means (scope.py, selection.py), how sources are listed (listing.py) and deleted (deletion.py)."""
