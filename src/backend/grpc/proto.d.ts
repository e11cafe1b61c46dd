// `import path from "./x.proto" with { type: "file" }`: Bun gives the file's path (inside a
// compiled binary, its embedded copy's).
declare module "*.proto" {
  const path: string;
  export default path;
}
