"""Runtime wrappers: run exported artifacts from their metadata.json, without torch or ultralytics."""
