"""AWS-fidelity tier: each module of rotator.aws_local.patches restores one documented AWS
behaviour; each test here asserts that behaviour, so it fails without the patch. Where moto's own
behaviour can be shown cheaply (no Docker), a second test suspends the patch and shows moto
still deviates: when it stops deviating, the patch can go."""
