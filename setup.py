"""Packaging for larvae_nb: every field comes from settings.ini (the nbdev 2 convention)."""
from configparser import ConfigParser
import setuptools, shlex, shutil
from pathlib import Path
from setuptools.command.build_py import build_py

config = ConfigParser(delimiters=['='])
config.read('settings.ini', encoding='utf-8')
cfg = config['DEFAULT']

expected = 'version description keywords author author_email'.split()
missing = [o for o in expected if o not in cfg]
if missing: raise SystemExit(f"settings.ini is missing {missing}")

licenses = {'apache2': ('Apache Software License 2.0', 'OSI Approved :: Apache Software License')}
statuses = ['1 - Planning', '2 - Pre-Alpha', '3 - Alpha', '4 - Beta', '5 - Production/Stable', '6 - Mature', '7 - Inactive']
py_versions = '3.11 3.12 3.13'.split()

requirements = shlex.split(cfg.get('requirements', ''))
dev_requirements = shlex.split(cfg.get('dev_requirements', ''))
min_python = cfg['min_python']
lic = licenses[cfg['license']]
extras = {'ssh': ['asyncssh>=2.14'],  # --cluster ssh
          'slurm': ['dask-jobqueue>=0.8'],  # --cluster slurm
          'xrootd': ['xrootd>=5.6', 'fsspec-xrootd>=0.4']}  # root:// URLs in a data manifest

class BuildWithReports(build_py):
    "Ship the report notebooks (nbs/2X_report_*.ipynb, their source of truth) in the package as larvae_nb/reports/."
    def run(self):
        super().run()
        found = sorted(Path('nbs').glob('2?_report_*.ipynb'))
        if not found: raise SystemExit("setup.py: no nbs/2X_report_*.ipynb to ship; build from the project's checkout or sdist")
        dest = Path(self.build_lib)/'larvae_nb'/'reports'
        dest.mkdir(parents=True, exist_ok=True)
        for nb in found: shutil.copy2(nb, dest/nb.name)

setuptools.setup(
    cmdclass={'build_py': BuildWithReports},
    name=cfg['lib_name'],
    version=cfg['version'],
    description=cfg['description'],
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    url=cfg['git_url'],
    author=cfg['author'],
    author_email=cfg['author_email'],
    license=lic[0],
    keywords=cfg['keywords'],
    classifiers=['Development Status :: ' + statuses[int(cfg['status'])],
                 'Intended Audience :: ' + cfg['audience'].title(),
                 'Natural Language :: ' + cfg['language'].title(),
                 'License :: ' + lic[1]]
                + ['Programming Language :: Python :: ' + o for o in py_versions[py_versions.index(min_python):]],
    packages=setuptools.find_packages(include=['larvae_nb', 'larvae_nb.*']),
    include_package_data=True,
    package_data={'larvae_nb': ['configs/*.yaml', 'templates/*.ipynb']},
    install_requires=requirements,
    extras_require={'dev': dev_requirements + [r for rs in extras.values() for r in rs],  # the tests meet real services through them
                    **extras},
    dependency_links=cfg.get('dep_links', '').split(),
    python_requires='>=' + min_python,
    zip_safe=False,
    entry_points={'console_scripts': cfg.get('console_scripts', '').split(),
                  'nbdev': [f"{cfg['lib_path']}={cfg['lib_path']}._modidx:d"]},
)
