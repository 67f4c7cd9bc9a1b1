"""Tools around the recipe, not the recipe: `make fetch` (fetch), the version table's reader
(versions: the images' locks, the doctor's compatibility rows) and the parsers of nvidia-smi /
npu-smi output (smi: the recipe's memory monitor and the doctor read the device through them).
Shipped in the images with the recipe, run as `python -m recipe.tools.<name>`."""
