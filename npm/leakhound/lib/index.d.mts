export * from './index.js';
import * as api from './index.js';
export default api;
