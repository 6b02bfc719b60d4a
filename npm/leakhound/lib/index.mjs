// ESM entry: the same module objects as require('leakhound') (no second copy).
import api from './api.js';

export const { run, diagnose, snapshot, watch, findBinary, LeakhoundError, BinaryNotFoundError } = api;
export default api;
