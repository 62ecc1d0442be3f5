import { CallHandler, ExecutionContext, Injectable, NestInterceptor } from '@nestjs/common';
import { Observable } from 'rxjs';
import { AnyRequest, contextOf } from '../common/request-context';

/** Records the matched route pattern (`/v1/models/:model/predict`) for the request's log line. */
@Injectable()
export class RouteInterceptor implements NestInterceptor {
  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const req = context.switchToHttp().getRequest<AnyRequest & { route?: { path?: string }; routeOptions?: { url?: string } }>();
    const requestContext = contextOf(req);
    // Express knows the route as req.route.path, Fastify as req.routeOptions.url.
    if (requestContext) requestContext.route = req.route?.path ?? req.routeOptions?.url;
    return next.handle();
  }
}
