// What status-page.ts receives when it imports status-page.client.js `with { type: "text" }`: the
// script's source, which it inlines into the page. (The script itself is checked by tsconfig.json here.)
declare const source: string;
export default source;
