"""What the tests are built on, shared by the unit tests, the model checker,
the end-to-end tests, the demo and the benchmark:

* ``jujusim``: a simulated Juju model that runs real charms' hooks (in the
  test process or as processes) and answers their hook tools;
* ``pki``: PKI fixtures made with ``cryptography``, and the checks a unit's
  files must pass (a key/certificate pair from the CA, mutual TLS);
* ``corpus``: CSRs, certificates and CAs as real tools write them (easy-rsa,
  the openssl CLI, keytool), made by those tools at test time;
* ``build``: builds the example charms with charm-tools, as a charm author would;
* ``driver`` and ``driver_charm/``: a small consumer charm whose handlers a
  test steers, for the layer's unit tests;
* ``deployment``: an example charm deployed on jujusim, with the checks
  every end-to-end scenario ends with;
* ``original_peers.py``: a stand-in with the original layer's wire
  behaviour, for upgrade tests.
"""
import importlib.util
from pathlib import Path


def _load_site():
    """jujusim's site/sitecustomize.py, loaded under another name: the
    in-process executor takes its patches from here, so that hooks run in
    process and as processes are patched alike."""
    path = Path(__file__).parent / 'jujusim' / 'site' / 'sitecustomize.py'
    spec = importlib.util.spec_from_file_location('support.site', str(path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


site = _load_site()
# charmhelpers 1.2.1 refuses to import on Debian (its platform check knows
# only a lowercase 'debian'); these machines are Debian, charms run on
# Ubuntu. Patched here, before anything imports charms.reactive (peers.py
# does), in whatever imports support.
site.patch_platform()
