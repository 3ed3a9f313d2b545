/**
 * The OpenAPI v3 documents kubectl downloads from an API server: /openapi/v3 (the index) and
 * /openapi/v3/apis/kylix.dev/v1 (the group's paths and schemas). With them kubectl 1.27+ validates
 * on the server (it sees the `fieldValidation` parameter, so `apply`/`create`/`edit` need no
 * --validate=false), picks JSON merge patch (no strategic-merge content type is offered) and
 * `kubectl explain` describes every kind's fields. The schemas are the CRDs' own (src/kubernetes),
 * so a cluster and a Kylix node describe a kind in the same words.
 *
 * /openapi/v2 is not served: kubectl asks for it only when v3 is missing, and then only as
 * protobuf; its 404 makes kubectl fall back to what v3 gives it.
 */
import { createHash } from 'node:crypto';
import type { HttpBindings } from '@hono/node-server';
import type { Hono } from 'hono';
import { crdSchemaFor } from '../kubernetes/crds.js';
import type { JsonSchema } from '../kubernetes/structural.js';
import { KINDS, type KindInfo } from '../resources/kinds.js';
import { API_GROUP, API_VERSION } from '../resources/meta.js';

const GV_PATH = `apis/${API_VERSION}`;

/** The component name of a kind's schema, in Kubernetes' reversed-group style. */
function schemaName(kind: string): string {
  return `dev.kylix.v1.${kind}`;
}

const gvk = (kind: string) => [{ group: API_GROUP, version: 'v1', kind }];

const ref = (kind: string) => ({ $ref: `#/components/schemas/${schemaName(kind)}` });

function json(schema: unknown) {
  return { content: { 'application/json': { schema } } };
}

const param = (name: string, description: string, inPath = false) => ({
  name,
  in: inPath ? 'path' : 'query',
  description,
  required: inPath,
  schema: { type: 'string', uniqueItems: true },
});

/** The query parameters kubectl looks for before it trusts the server to validate. */
const WRITE_PARAMS = [
  param('dryRun', 'Accepted for kubectl; Kylix has no dry run and refuses none.'),
  param('fieldManager', 'The name of the writer (kubectl sets it).'),
  param(
    'fieldValidation',
    'Kylix always validates strictly: unknown and duplicate fields are refused (Strict), whatever is asked.',
  ),
];

/** The operations of one kind's collection and object paths. */
function pathsOf(info: KindInfo): Record<string, unknown> {
  const ext = (action: string) => ({
    'x-kubernetes-action': action,
    'x-kubernetes-group-version-kind': gvk(info.kind)[0],
  });
  const op = (id: string, action: string, description: string, extra: Record<string, unknown> = {}) => ({
    tags: [`kylix.dev_v1`],
    operationId: `${id}${info.kind}`,
    description,
    responses: { '200': { description: 'OK', ...json(ref(info.kind)) } },
    ...ext(action),
    ...extra,
  });
  const ns = param('namespace', 'object name and auth scope, such as for teams and projects', true);
  const name = param('name', `name of the ${info.kind}`, true);
  const list = op('listNamespaced', 'list', `list or watch objects of kind ${info.kind}`, {
    parameters: [param('labelSelector', 'a label selector'), param('watch', 'watch for changes')],
    responses: { '200': { description: 'OK', ...json(ref(`${info.kind}List`)) } },
  });
  const collection: Record<string, unknown> = { parameters: [ns], get: list };
  const object: Record<string, unknown> = {
    parameters: [name, ns],
    get: op('readNamespaced', 'get', `read the specified ${info.kind}`),
  };
  if (!info.readOnly) {
    collection.post = op('createNamespaced', 'post', `create a ${info.kind}`, {
      parameters: WRITE_PARAMS,
      requestBody: json(ref(info.kind)),
    });
    object.put = op('replaceNamespaced', 'put', `replace the specified ${info.kind}`, {
      parameters: WRITE_PARAMS,
      requestBody: json(ref(info.kind)),
    });
    object.patch = op('patchNamespaced', 'patch', `partially update the specified ${info.kind}`, {
      parameters: [...WRITE_PARAMS, param('force', 'Force is going to "force" Apply requests.')],
      requestBody: {
        content: {
          'application/merge-patch+json': { schema: { type: 'object' } },
          'application/apply-patch+yaml': { schema: { type: 'object' } },
        },
      },
    });
    object.delete = op('deleteNamespaced', 'delete', `delete a ${info.kind}`, {
      parameters: [param('resourceVersion', 'delete only at this version')],
    });
  }
  return {
    [`/${GV_PATH}/namespaces/{namespace}/${info.plural}`]: collection,
    [`/${GV_PATH}/namespaces/{namespace}/${info.plural}/{name}`]: object,
    [`/${GV_PATH}/${info.plural}`]: {
      get: op('listAllNamespaces', 'list', `list or watch ${info.plural} in every namespace`, {
        responses: { '200': { description: 'OK', ...json(ref(`${info.kind}List`)) } },
      }),
    },
  };
}

/** A kind's schema for kubectl: the CRD's, tagged with its group, version and kind. */
function kindSchema(info: KindInfo): JsonSchema {
  return { ...crdSchemaFor(info), 'x-kubernetes-group-version-kind': gvk(info.kind) };
}

/** The list kind's schema (kubectl explain and clients read items from it). */
function listSchema(info: KindInfo): JsonSchema {
  return {
    type: 'object',
    description: `A list of ${info.kind} objects.`,
    required: ['items'],
    properties: {
      apiVersion: { type: 'string' },
      kind: { type: 'string' },
      metadata: { type: 'object', properties: { resourceVersion: { type: 'string' } } },
      items: { type: 'array', items: ref(info.kind) },
    },
    'x-kubernetes-group-version-kind': gvk(`${info.kind}List`),
  };
}

/** The OpenAPI v3 document of kylix.dev/v1. */
export function openApiV3Document(version: string): Record<string, unknown> {
  const schemas: Record<string, JsonSchema> = {};
  let paths: Record<string, unknown> = {};
  for (const info of Object.values(KINDS)) {
    schemas[schemaName(info.kind)] = kindSchema(info);
    schemas[schemaName(`${info.kind}List`)] = listSchema(info);
    paths = { ...paths, ...pathsOf(info) };
  }
  return {
    openapi: '3.0.0',
    info: { title: 'Kylix', version: `v${version}` },
    paths,
    components: { schemas },
  };
}

/** Serves /openapi/v3 and the group's document (computed once: the kinds do not change at run time). */
export function addOpenApiRoutes(app: Hono<{ Bindings: HttpBindings }>, version: string): void {
  const body = JSON.stringify(openApiV3Document(version));
  const hash = createHash('sha256').update(body).digest('hex').slice(0, 32).toUpperCase();
  app.get('/openapi/v3', (c) =>
    c.json({ paths: { [GV_PATH]: { serverRelativeURL: `/openapi/v3/${GV_PATH}?hash=${hash}` } } }),
  );
  app.get(`/openapi/v3/${GV_PATH}`, (c) => {
    // With the hash, the document is immutable (kubectl caches it by URL), as the API server's.
    const cache = c.req.query('hash') === hash ? 'public, immutable' : 'no-cache, private';
    return c.body(body, 200, {
      'content-type': 'application/json',
      'cache-control': cache,
      etag: `"${hash}"`,
    });
  });
}
