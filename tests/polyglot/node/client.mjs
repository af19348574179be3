// A Node caller of the router, with nothing but the repo's .proto files and the npm packages in
// package.json: what the README's "From another language" promises. Run by
// tests/polyglot/test_node_client.py against a router on a loopback port:
//
//   node client.mjs '{"target": "127.0.0.1:50051", "protos": "<repo>/protos", "key": "sk-...",
//                     "limited_key": "sk-...", "model": "chain"}'
//
// It prints one JSON object (what it saw) on stdout; a failure is a message on stderr and exit 1.
import { createRequire } from 'node:module';
import path from 'node:path';

import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import protobuf from 'protobufjs';
import { getProtoPath } from 'google-proto-files';
import { service as healthService } from 'grpc-health-check';

const require = createRequire(import.meta.url);
const args = JSON.parse(process.argv[2]);
// google/rpc/*.proto (the error details) come from googleapis, packaged as google-proto-files.
const GOOGLEAPIS = path.dirname(getProtoPath());
// grpc-js has no reflection client; @grpc/reflection (its server side) ships the proto.
const REFLECTION_PROTO = require.resolve(
  '@grpc/reflection/build/proto/grpc/reflection/v1/reflection.proto',
);
const LOADER_OPTIONS = { keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true };

const router = grpc.loadPackageDefinition(
  protoLoader.loadSync('switchboard/v1/router_service.proto', {
    ...LOADER_OPTIONS,
    includeDirs: [args.protos],
  }),
).switchboard.v1;
const client = new router.RouterService(args.target, grpc.credentials.createInsecure());

function bearer(key) {
  const metadata = new grpc.Metadata();
  if (key) metadata.set('authorization', `Bearer ${key}`);
  return metadata;
}

function chatRequest(model, text) {
  return { params: { model, messages: [{ role: 'ROLE_USER', text }] } };
}

function deadline() {
  return { deadline: Date.now() + 10_000 };
}

function chat(request, key) {
  return new Promise((resolve, reject) => {
    client.Chat(request, bearer(key), deadline(), (err, reply) => (err ? reject(err) : resolve(reply)));
  });
}

function chatStream(request, key) {
  return new Promise((resolve, reject) => {
    const kinds = [];
    const call = client.ChatStream(request, bearer(key), deadline());
    // `oneofs: true` names the set member of the `event` oneof in `event`.
    call.on('data', (message) => kinds.push(message.event));
    call.on('error', reject);
    call.on('end', () => resolve(kinds));
  });
}

// --- Errors: the `grpc-status-details-bin` trailer is a google.rpc.Status ---------------------

const googleapis = new protobuf.Root();
googleapis.resolvePath = (origin, target) => path.join(GOOGLEAPIS, target);
googleapis.loadSync(
  [
    'google/rpc/status.proto',
    'google/rpc/error_details.proto',
    'google/protobuf/descriptor.proto', // for what reflection answers
  ],
  { keepCase: true },
);
const Status = googleapis.lookupType('google.rpc.Status');
const FileDescriptorProto = googleapis.lookupType('google.protobuf.FileDescriptorProto');

function decodeError(err) {
  const [bin] = err.metadata.get('grpc-status-details-bin');
  const out = { code: grpc.status[err.code], message: err.details, details: {} };
  if (!bin) return out;
  const status = Status.decode(bin);
  for (const any of status.details) {
    // type_url is "type.googleapis.com/google.rpc.ErrorInfo"
    const type = googleapis.lookupType(any.type_url.slice(any.type_url.lastIndexOf('/') + 1));
    out.details[type.name] = type.toObject(type.decode(any.value), { longs: Number });
  }
  return out;
}

async function failure(promise) {
  try {
    await promise;
  } catch (err) {
    return decodeError(err);
  }
  throw new Error('the call succeeded where an error was expected');
}

// --- Reflection -------------------------------------------------------------------------------

const reflection = grpc.loadPackageDefinition(
  protoLoader.loadSync(REFLECTION_PROTO, LOADER_OPTIONS),
).grpc.reflection.v1;

function reflect(requests) {
  const stub = new reflection.ServerReflection(args.target, grpc.credentials.createInsecure());
  return new Promise((resolve, reject) => {
    const answers = [];
    const call = stub.ServerReflectionInfo(deadline());
    call.on('data', (answer) => answers.push(answer));
    call.on('error', (err) => {
      stub.close();
      reject(err);
    });
    call.on('end', () => {
      stub.close();
      resolve(answers);
    });
    for (const request of requests) call.write(request);
    call.end();
  });
}

async function reflected() {
  const [list] = await reflect([{ list_services: '' }]);
  const services = list.list_services_response.service.map((s) => s.name);
  // Every listed service is described (what `grpcurl describe` asks): the file that defines it.
  const answers = await reflect(services.map((name) => ({ file_containing_symbol: name })));
  const described = Object.fromEntries(
    answers.map((answer, i) => [services[i], describedFile(answer)]),
  );
  // The descriptors reflection returns are enough to build a working client: no .proto needed.
  const routerFiles = answers[services.indexOf('switchboard.v1.RouterService')];
  const descriptors = routerFiles.file_descriptor_response.file_descriptor_proto;
  const definition = protoLoader.loadFileDescriptorSetFromBuffer(
    fileDescriptorSet(descriptors),
    LOADER_OPTIONS,
  );
  const ReflectedRouter = grpc.loadPackageDefinition(definition).switchboard.v1.RouterService;
  const reflectedClient = new ReflectedRouter(args.target, grpc.credentials.createInsecure());
  const models = await new Promise((resolve, reject) => {
    reflectedClient.ListModels({}, bearer(args.key), deadline(), (err, reply) =>
      err ? reject(err) : resolve(reply),
    );
  });
  reflectedClient.close();
  return { services, described, models: models.models.map((m) => ({ id: m.id, kind: m.kind })) };
}

// The name of the file a symbol lookup answered with (the first one; its dependencies follow),
// or the error reflection gave.
function describedFile(answer) {
  if (answer.message_response === 'error_response') {
    return `error ${answer.error_response.error_code}: ${answer.error_response.error_message}`;
  }
  const [first] = answer.file_descriptor_response.file_descriptor_proto;
  return FileDescriptorProto.decode(first).name;
}

// A FileDescriptorSet is `repeated FileDescriptorProto file = 1`: each file as field 1.
function fileDescriptorSet(files) {
  const writer = protobuf.Writer.create();
  for (const file of files) writer.uint32((1 << 3) | 2).bytes(file);
  return writer.finish();
}

// --- Health -----------------------------------------------------------------------------------

function health(serviceName) {
  const Health = grpc.makeClientConstructor(healthService, 'grpc.health.v1.Health');
  const stub = new Health(args.target, grpc.credentials.createInsecure());
  return new Promise((resolve, reject) => {
    stub.check({ service: serviceName }, deadline(), (err, reply) => {
      stub.close();
      return err ? reject(err) : resolve(reply.status);
    });
  });
}

// --- Run --------------------------------------------------------------------------------------

const reply = await chat(chatRequest(args.model, 'hello from node'), args.key);
const result = {
  chat: {
    text: reply.completion.choices[0].message.text,
    finish_reason: reply.completion.choices[0].finish_reason,
    deployment: reply.route.deployment,
    attempts: reply.route.attempts.map((a) => a.outcome),
  },
  stream: await chatStream(chatRequest(args.model, 'hello again'), args.key),
  errors: {
    unauthenticated: await failure(chat(chatRequest(args.model, 'who am i'), null)),
    not_found: await failure(chat(chatRequest('no-such-model', 'hello'), args.key)),
    // OpenAI's spelling of a role: proto-loader drops an enum string it does not know, so the
    // message goes without one (ROLE_UNSPECIFIED), which the router refuses by the field's path.
    role_unset: await failure(
      chat({ params: { model: args.model, messages: [{ role: 'user', text: 'hi' }] } }, args.key),
    ),
    // OpenAI's shape of a forced call: proto-loader drops the keys ToolChoice has no field for,
    // so it arrives set with no kind, which the router refuses rather than drop the choice.
    tool_choice_unset: await failure(
      chat(
        {
          params: {
            ...chatRequest(args.model, 'weather?').params,
            tools: [{ type: 'function', function: { name: 'get_weather' } }],
            tool_choice: { type: 'function', function: { name: 'get_weather' } },
          },
        },
        args.key,
      ),
    ),
  },
};
await chat(chatRequest(args.model, 'first'), args.limited_key);
result.errors.rate_limited = await failure(chat(chatRequest(args.model, 'second'), args.limited_key));
result.reflection = await reflected();
result.health = {
  server: await health(''),
  router: await health('switchboard.v1.RouterService'),
};
client.close();
process.stdout.write(`${JSON.stringify(result)}\n`);
