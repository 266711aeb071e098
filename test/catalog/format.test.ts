/**
 * `images` and `inspect` text against the seed's exact output, and Python's json.dumps text
 * (strings below were printed by CPython 3.11's json module).
 */
import test from 'ava';
import {
  formatImagesLine,
  imagesDate,
  inspectJson,
  pythonDateTimeString,
  pythonJsonDumps,
  type ContainerRecord,
} from '../../src/catalog/index.js';

// The seed's `sregistry inspect pusheen/asaurus:red`, after the two path lines.
const SEED_INSPECT = `{
    "client": "dropbox",
    "collection": "pusheen",
    "collection_id": 12,
    "created_at": "2018-01-28 18:42:13",
    "id": 33,
    "image": "/home/vanessa/.singularity/shub/pusheen-asaurus:red.simg",
    "metrics": {
        "collection": "pusheen",
        "data": {
            "attributes": {
                "deffile": null,
                "environment": "# Custom environment shell code should follow\\n\\n",
                "help": null,
                "labels": null,
                "runscript": "#!/bin/sh\\n\\nexec \\"sh\\" \\"$@\\"\\n",
                "test": null
            },
            "type": "container"
        },
        "image": "asaurus",
        "storage": "pusheen/asaurus:red.simg",
        "tag": "red",
        "uri": "pusheen/asaurus:red",
        "url": "pusheen/asaurus",
        "version": null
    },
    "name": "asaurus",
    "tag": "red",
    "uri": "pusheen/asaurus:red",
    "url": "https://content.dropboxapi.com/2/files/download",
    "version": "02c08a25c8f4697e16e896239e549a2b"
}`;

// The seed's `sregistry images | grep dropbox`.
const SEED_IMAGES = [
  '30 January 28, 2018\t[dropbox]\tpusheen/asaurus:blue@02c08a25c8f4697e16e896239e549a2b',
  '31 January 28, 2018\t[dropbox]\tpusheen/asaurus:red@02c08a25c8f4697e16e896239e549a2b',
  '32 January 28, 2018\t[dropbox]\tpusheen/asaurus:green',
] as const;

function record(over: Partial<ContainerRecord>): ContainerRecord {
  return {
    id: 1,
    collectionId: 12,
    collection: 'pusheen',
    name: 'asaurus',
    tag: 'red',
    image: null,
    url: 'https://content.dropboxapi.com/2/files/download',
    uri: 'pusheen/asaurus:red',
    client: 'dropbox',
    version: '02c08a25c8f4697e16e896239e549a2b',
    createdAt: '2018-01-28 18:42:13',
    metrics: {},
    ...over,
  };
}

test('inspectJson prints the seed\'s record exactly', (t) => {
  // Metrics key order as a Python dict would hold them (not sorted): the output sorts them.
  const metrics = {
    uri: 'pusheen/asaurus:red',
    version: null,
    url: 'pusheen/asaurus',
    tag: 'red',
    storage: 'pusheen/asaurus:red.simg',
    image: 'asaurus',
    collection: 'pusheen',
    data: {
      type: 'container',
      attributes: {
        test: null,
        runscript: '#!/bin/sh\n\nexec "sh" "$@"\n',
        labels: null,
        help: null,
        environment: '# Custom environment shell code should follow\n\n',
        deffile: null,
      },
    },
  };
  const rec = record({ id: 33, image: '/home/vanessa/.singularity/shub/pusheen-asaurus:red.simg', metrics });
  t.is(inspectJson(rec), SEED_INSPECT);
  t.deepEqual(JSON.parse(inspectJson(rec)), JSON.parse(SEED_INSPECT));
});

test('formatImagesLine prints the seed\'s rows exactly (no @ for an empty or missing version)', (t) => {
  t.is(formatImagesLine(record({ id: 32, tag: 'blue' }), 30), SEED_IMAGES[0]);
  t.is(formatImagesLine(record({ id: 33, tag: 'red' }), 31), SEED_IMAGES[1]);
  t.is(formatImagesLine(record({ id: 34, tag: 'green', version: '' }), 32), SEED_IMAGES[2]);
  t.is(formatImagesLine(record({ id: 34, tag: 'green', version: null }), 32), SEED_IMAGES[2]);
  // bot.table pads the row number to two columns: "1  …" like the seed's search table.
  t.is(formatImagesLine(record({ tag: 'green', version: null }), 1), '1  January 28, 2018\t[dropbox]\tpusheen/asaurus:green');
  t.is(formatImagesLine(record({ version: null }), 100), '100 January 28, 2018\t[dropbox]\tpusheen/asaurus:red');
});

test('dates: strftime(\'%B %d, %Y\') and str(datetime) of stored DATETIME text', (t) => {
  t.is(imagesDate('2018-01-05 00:00:01'), 'January 05, 2018');
  t.is(imagesDate('2019-12-31 23:59:59.999999'), 'December 31, 2019');
  t.is(imagesDate(null), '');
  t.is(pythonDateTimeString('2018-01-28 18:42:13'), '2018-01-28 18:42:13');
  t.is(pythonDateTimeString('2018-01-28 18:42:13.000000'), '2018-01-28 18:42:13');
  t.is(pythonDateTimeString('2018-01-28 18:42:13.5'), '2018-01-28 18:42:13.500000');
  t.is(pythonDateTimeString('2018-01-28 18:42:13.000123'), '2018-01-28 18:42:13.000123');
  t.is(pythonDateTimeString('2018-01-28'), '2018-01-28 00:00:00');
  t.is(pythonDateTimeString(null), null);
});

test('pythonJsonDumps writes what CPython\'s json.dumps writes', (t) => {
  // json.dumps({"b": 1, "a": {"z": None, "y": "é\u2028"}})
  t.is(pythonJsonDumps({ b: 1, a: { z: null, y: 'é\u2028' } }), '{"b": 1, "a": {"z": null, "y": "\\u00e9\\u2028"}}');
  // json.dumps({"b": 1, "a": {"z": None, "y": "é\u2028"}}, indent=4, sort_keys=True)
  t.is(
    pythonJsonDumps({ b: 1, a: { z: null, y: 'é\u2028' } }, { indent: 4, sortKeys: true }),
    '{\n    "a": {\n        "y": "\\u00e9\\u2028",\n        "z": null\n    },\n    "b": 1\n}',
  );
  // json.dumps({"e": {}, "l": [], "x": [1, [2, {}]]}, indent=4)
  t.is(
    pythonJsonDumps({ e: {}, l: [], x: [1, [2, {}]] }, { indent: 4 }),
    '{\n    "e": {},\n    "l": [],\n    "x": [\n        1,\n        [\n            2,\n            {}\n        ]\n    ]\n}',
  );
  // json.dumps(["\x7f", "😀", "\x00\x1f\b\f\n\r\t\"\\/", True, False, -0.5])
  t.is(
    pythonJsonDumps(['\x7f', '😀', '\x00\x1f\b\f\n\r\t"\\/', true, false, -0.5]),
    '["\\u007f", "\\ud83d\\ude00", "\\u0000\\u001f\\b\\f\\n\\r\\t\\"\\\\/", true, false, -0.5]',
  );
  // sort_keys sorts by code point: json.dumps({"b": 0, "B": 0, "é": 0, "a": 0}, sort_keys=True)
  t.is(pythonJsonDumps({ b: 0, B: 0, é: 0, a: 0 }, { sortKeys: true }), '{"B": 0, "a": 0, "b": 0, "\\u00e9": 0}');
});
