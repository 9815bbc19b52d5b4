"""The model registry on git + DVC: versions, stages, artifacts and their integrity."""
