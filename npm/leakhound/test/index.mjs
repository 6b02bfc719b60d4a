// ESM entry of leakhound/test: the same functions as the CommonJS one.
import cjs from './index.js';

export const { expectNoLeak, expectListenersRestored, expectHandlesClosed, describeSuspect, unreliableReason } = cjs;
export default cjs;
