/**
 * Cross-check with the real thing: SQLAlchemy (the Python client's ORM) reads a database `sreg`
 * wrote and prints `inspect` the way sregistry's sqlite.py does, then adds a row that `sreg`
 * reads back. Runs only where a python3 with SQLAlchemy is installed (Debian:
 * python3-sqlalchemy); skipped elsewhere.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { RegistryDb, formatImagesLine, inspectJson } from '../../src/catalog/index.js';
import { parseImageUri } from '../../src/registry/index.js';

const exec = promisify(execFile);

async function findPython(): Promise<string | undefined> {
  for (const py of ['python3', '/usr/bin/python3']) {
    try {
      await exec(py, ['-c', 'import sqlalchemy']);
      return py;
    } catch {
      // try the next one
    }
  }
  return undefined;
}
const python = await findPython();
const pyTest = python ? test : test.skip;

// sregistry-cli sregistry/database/models.py (the columns and relationships), and what
// sqlite.py's inspect() and images() print.
const SCRIPT = String.raw`
import json, sys
from sqlalchemy import Column, DateTime, Integer, String, Text, ForeignKey, func, create_engine
from sqlalchemy.schema import UniqueConstraint
from sqlalchemy.orm import backref, relationship, scoped_session, sessionmaker
from sqlalchemy.ext.declarative import declarative_base
from uuid import uuid4
Base = declarative_base()
class Collection(Base):
    __tablename__ = 'collection'
    id = Column(Integer, primary_key=True)
    name = Column(String(150), unique=True)
    token = Column(String(50))
    created_at = Column(DateTime, default=func.now())
    containers = relationship('Container', lazy='select', cascade='delete,all', backref=backref('collection', lazy='joined'))
    def __init__(self, name=None, token=None):
        self.name = name
        self.token = token or str(uuid4())
class Container(Base):
    __tablename__ = 'container'
    id = Column(Integer, primary_key=True)
    created_at = Column(DateTime, default=func.now())
    metrics = Column(Text, nullable=False)
    name = Column(String(250), nullable=False)
    tag = Column(String(250), nullable=False)
    image = Column(String(250), nullable=True)
    url = Column(String(500), nullable=True)
    uri = Column(String(500), nullable=True)
    client = Column(String(50), nullable=False)
    version = Column(String(250), nullable=True)
    collection_id = Column(Integer, ForeignKey('collection.id'), nullable=False)
    __table_args__ = (UniqueConstraint('collection_id', 'name', 'tag', 'client', 'version', name='_container_uc'),)
    def get_uri(self):
        uri = "%s/%s:%s" % (self.collection.name, self.name, self.tag)
        if self.version not in [None, '']:
            uri = "%s@%s" % (uri, self.version)
        return uri
engine = create_engine('sqlite:///' + sys.argv[1])
session = scoped_session(sessionmaker(autocommit=False, autoflush=False, bind=engine))
Base.query = session.query_property()
Base.metadata.create_all(bind=engine)
out = {"inspect": [], "images": []}
for i, c in enumerate(Container.query.order_by(Container.id).all()):
    fields = c.__dict__.copy()
    fields['collection'] = c.collection.name
    fields['metrics'] = json.loads(fields['metrics'])
    del fields['_sa_instance_state']
    fields['created_at'] = str(fields['created_at'])
    out["inspect"].append(json.dumps(fields, indent=4, sort_keys=True))
    out["images"].append(str(i + 1).ljust(2) + " " + "\t".join([c.created_at.strftime('%B %d, %Y'), "[%s]" % c.client, c.get_uri()]))
col = Collection.query.filter(Collection.name == 'vsoch').first()
if col is None:
    col = Collection(name='vsoch'); session.add(col); session.commit()
new = Container(metrics=json.dumps({"from": "python"}), name='hello-world', image=None, client='dropbox', tag='tacos', version='abc', url='u', uri='vsoch/hello-world:tacos', collection_id=col.id)
session.add(new); col.containers.append(new); session.commit()
print(json.dumps(out))
`;

pyTest('SQLAlchemy reads what sreg wrote and prints the same inspect and images text; sreg reads its rows', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'sreg-pycompat-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const db = RegistryDb.open(dir);
  t.teardown(() => db.close());
  db.upsertContainer({
    n: parseImageUri('pusheen/asaurus:red'),
    image: '/home/vanessa/.singularity/shub/pusheen-asaurus:red.simg',
    url: 'https://content.dropboxapi.com/2/files/download',
    metrics: { data: { attributes: { runscript: '#!/bin/sh\n\nexec "sh" "$@"\n', labels: { 'a.b': 'ü' } }, type: 'container' }, version: null },
    version: '02c08a25c8f4697e16e896239e549a2b',
  });
  db.upsertContainer({ n: parseImageUri('pusheen/asaurus:green'), image: null, url: 'u', metrics: {} });
  const script = path.join(dir, 'check.py');
  await writeFile(script, SCRIPT);
  const { stdout } = await exec(python ?? 'python3', [script, db.file], { env: { ...process.env, SQLALCHEMY_SILENCE_UBER_WARNING: '1' } });
  const py = JSON.parse(stdout) as { inspect: string[]; images: string[] };
  const ours = db.listContainers();
  t.is(ours.length, 3, 'the row Python added is visible');
  t.deepEqual(py.inspect, ours.slice(0, 2).map((r) => inspectJson(r)));
  t.deepEqual(py.images, ours.slice(0, 2).map((r, i) => formatImagesLine(r, i + 1)));
  const added = db.getContainer(parseImageUri('vsoch/hello-world:tacos'));
  t.like(added, { collection: 'vsoch', version: 'abc', client: 'dropbox', uri: 'vsoch/hello-world:tacos' });
  t.deepEqual(added?.metrics, { from: 'python' });
  t.regex(added?.createdAt ?? '', /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/);
});
