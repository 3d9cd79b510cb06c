# Studies, participants and (read-only) judgements are registered here as they are added.
