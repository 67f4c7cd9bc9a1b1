"""The ONE shared fine-tune recipe (bert-base-cased on GLUE CoLA) for NPU, CUDA and CPU."""
