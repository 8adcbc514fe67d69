"""Infrastructure tests: nginx, gunicorn, Ansible and the AWS side on moto."""
