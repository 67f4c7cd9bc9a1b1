# Both images built and run for real on this machine (docs/images.md): stand-in bases made here
# (dev/standin/build.sh lists how they differ from the real ones), the kit's own build targets,
# then tests/test_images.py in the containers. Needs root or a running dockerd; see docs/images.md.
.PHONY: test-images standin-bases
test-images: $(VENV)/.stamp ## build both images on local stand-in bases (debootstrap + pyenv 3.10 + fake CANN) and run verify, smoke, stop/resume and the doctor in them
	PY=$(PY) dev/standin/test_images.sh

standin-bases: $(VENV)/.stamp ## only build the stand-in base images (kit-standin/*) that test-images uses
	PYTHON=$(PY) dev/standin/build.sh all
