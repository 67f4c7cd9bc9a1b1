"""The kit's verify suite (pytest, shipped in the images at /opt/kit/verify) and the doctor.

    python -m verify.doctor [--json]        # diagnose this environment, one table
    python -m pytest verify --profile smoke  # environment checks + train + assert thresholds
"""
