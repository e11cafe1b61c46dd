// What src/demo/demo-web.ts receives when it imports game.js `with { type: "text" }`: the bundle's
// source, which it serves as /game.js. (game.ts itself is checked by examples/browser/tsconfig.json.)
declare const source: string;
export default source;
