"""Configuration, from pool.yml or env mode's variables alike: every setting
declared once (settings), what a config resolves to (model), what one
worker runs with (workerspec), the checks of its values (checks), the
pool.yml loader (loader), YAML nodes that keep their line numbers
(yamlnodes), memory sizes as operators write them (sizes), and
``resqued --check``'s text (describe).
"""
