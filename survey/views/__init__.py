"""The pages of a study: :mod:`.participant` (what a participant sees), :mod:`.study` (the
researcher's side: create, change, open, monitor, withdraw), :mod:`.analysis` (results)."""
