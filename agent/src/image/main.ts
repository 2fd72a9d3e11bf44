/** Entry of `dist/tools/select-payload.js`, run by agent/Dockerfile's payload stage only. */
import { main } from "./selectPayload";

process.exitCode = main(process.argv.slice(2));
