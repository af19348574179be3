// The Vercel AI SDK as a user points it at Switchboard: `openai(model)` (the Responses API) and
// `openai.chat(model)` (chat completions) on the edge at EDGE_URL. Prints what it saw as JSON;
// tests/polyglot/test_vercel_ai_sdk.py asserts on it.
import { createOpenAI } from "@ai-sdk/openai";
import { Output, generateText, stepCountIs, streamText, tool } from "ai";
import { z } from "zod";

globalThis.AI_SDK_LOG_WARNINGS = false; // collected per call below instead
const openai = createOpenAI({ baseURL: `${process.env.EDGE_URL}/v1`, apiKey: "sk-vercel" });
const weather = tool({
  description: "The current weather of a city",
  inputSchema: z.object({ city: z.string() }),
  execute: async ({ city }) => `sunny in ${city}`,
});
// With `store` true (the provider's default) the SDK sends earlier output back as
// `item_reference`s, which the gateway resolves from the responses it stored; with `store: false`
// it sends the items whole.
const stateless = { openai: { store: false } };

async function caught(call) {
  try {
    return { text: await call() };
  } catch (error) {
    return { status: error.statusCode, body: JSON.parse(error.responseBody ?? "null") };
  }
}

async function run(model) {
  const first = await generateText({ model: model("plain"), system: "Be brief.", prompt: "hello there" });
  const history = [{ role: "user", content: "hello there" }, ...first.response.messages];
  const second = await generateText({
    model: model("plain"),
    messages: [...history, { role: "user", content: "and again" }],
    providerOptions: stateless,
  });
  const streamed = streamText({ model: model("plain"), prompt: "stream this please" });
  let text = "";
  for await (const delta of streamed.textStream) text += delta;
  const streamedTools = streamText({
    model: model("tools"),
    prompt: "weather in Oslo?",
    tools: { weather },
    stopWhen: stepCountIs(3),
  });
  let toolText = "";
  for await (const delta of streamedTools.textStream) toolText += delta;
  const tools = await generateText({
    model: model("tools"),
    prompt: "weather in Paris?",
    tools: { weather },
    stopWhen: stepCountIs(3),
  });
  const json = await generateText({
    model: model("json"),
    prompt: "weather?",
    output: Output.object({ schema: z.object({ city: z.string(), sunny: z.boolean() }) }),
  });
  return {
    generate: { text: first.text, finish: first.finishReason, usage: first.usage.totalTokens },
    again: second.text,
    referenced: await caught(async () => {
      const messages = [...history, { role: "user", content: "x" }];
      return (await generateText({ model: model("plain"), messages })).text;
    }),
    stream: { text, finish: await streamed.finishReason },
    tools: {
      text: tools.text,
      steps: tools.steps.length,
      calls: tools.steps.flatMap((s) => s.toolCalls.map((c) => c.input)),
      results: tools.steps.flatMap((s) => s.toolResults.map((r) => r.output)),
    },
    streamedTools: { text: toolText, steps: (await streamedTools.steps).length },
    object: json.output,
    warnings: [first, second, tools, json].flatMap((r) => r.warnings ?? []),
  };
}

const seen = { responses: await run((m) => openai(m)), chat: await run((m) => openai.chat(m)) };
console.log(JSON.stringify(seen));
