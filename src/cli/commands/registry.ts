/** The registry commands of the Python client: push, pull, search, images, inspect, get, share, rm, add. */
import type { CommandModule } from 'yargs';
import * as registry from '../../registry/commands.js';
import { run, type GlobalArgs } from '../run.js';

type Cmd<A> = CommandModule<GlobalArgs, GlobalArgs & A>;

export const pushCommand: Cmd<{ file: string; name: string; tag?: string; force?: boolean }> = {
  command: 'push <file>',
  describe: 'Upload an image to Dropbox as /<collection>/<name>:<tag>.simg',
  builder: (y) =>
    y
      .positional('file', { type: 'string', demandOption: true, describe: 'the image file' })
      .option('name', { type: 'string', demandOption: true, describe: 'collection/name:tag (dropbox:// allowed)' })
      .option('tag', { type: 'string', describe: 'the tag (overrides the one in --name)' })
      .option('force', { type: 'boolean', default: false, describe: 'replace an existing image' }),
  handler: (a) => run(a, (s) => registry.push(s, a.file, a.name, { tag: a.tag, force: a.force })),
};

export const pullCommand: Cmd<{ uri: string; force?: boolean; name?: string }> = {
  command: 'pull <uri>',
  describe: 'Download an image (content_hash checked) into SREGISTRY_STORAGE and record it',
  builder: (y) =>
    y
      .positional('uri', { type: 'string', demandOption: true, describe: 'collection/name:tag' })
      .option('force', { type: 'boolean', default: false, describe: 'overwrite a local image' })
      .option('name', { type: 'string', describe: 'save to this file instead' }),
  handler: (a) => run(a, (s) => registry.pull(s, a.uri, { force: a.force, name: a.name })),
};

export const searchCommand: Cmd<{ query?: string; json?: boolean }> = {
  command: 'search [query]',
  describe: 'List the images in Dropbox (all, or those whose name contains query)',
  builder: (y) => y.positional('query', { type: 'string' }).option('json', { type: 'boolean', default: false }),
  handler: (a) => run(a, (s) => registry.search(s, a.query, { json: a.json })),
};

export const imagesCommand: Cmd<{ query?: string; json?: boolean }> = {
  command: 'images [query]',
  describe: 'List the images in the local database',
  builder: (y) => y.positional('query', { type: 'string' }).option('json', { type: 'boolean', default: false }),
  handler: (a) => run(a, (s) => registry.images(s, a.query, { json: a.json })),
};

export const inspectCommand: Cmd<{ uri: string; json?: boolean }> = {
  command: 'inspect <uri>',
  describe: "Show an image's record from the local database",
  builder: (y) => y.positional('uri', { type: 'string', demandOption: true }).option('json', { type: 'boolean', default: false }),
  handler: (a) => run(a, (s) => registry.inspect(s, a.uri, { json: a.json })),
};

export const getCommand: Cmd<{ uri: string }> = {
  command: 'get <uri>',
  describe: "Print an image's local path (or its remote URL)",
  builder: (y) => y.positional('uri', { type: 'string', demandOption: true }),
  handler: (a) => run(a, (s) => registry.get(s, a.uri)),
};

export const shareCommand: Cmd<{ uri: string }> = {
  command: 'share <uri>',
  describe: 'Create (or fetch the existing) shared link of an image',
  builder: (y) => y.positional('uri', { type: 'string', demandOption: true }),
  handler: (a) => run(a, (s) => registry.share(s, a.uri)),
};

export const rmCommand: Cmd<{ uri: string }> = {
  command: 'rm <uri>',
  describe: 'Remove an image from the local database and storage (not from Dropbox)',
  builder: (y) => y.positional('uri', { type: 'string', demandOption: true }),
  handler: (a) => run(a, (s) => registry.rm(s, a.uri)),
};

export const addCommand: Cmd<{ file: string; name: string; force?: boolean }> = {
  command: 'add <file>',
  describe: 'Record a local image (copied into SREGISTRY_STORAGE)',
  builder: (y) =>
    y
      .positional('file', { type: 'string', demandOption: true })
      .option('name', { type: 'string', demandOption: true, describe: 'collection/name:tag' })
      .option('force', { type: 'boolean', default: false, describe: 'replace an existing local image' }),
  handler: (a) => run(a, (s) => registry.add(s, a.file, a.name, { force: a.force })),
};
